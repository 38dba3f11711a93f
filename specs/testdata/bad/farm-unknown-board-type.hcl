farm "f" {}
board_type "nucleo-f401re" {}

board "n1" {
  type = "nucleo-f410re"
  power "gpio" {
    line = "GPIO17"
  }
  console "serial" {
    port = "/dev/serial/by-id/usb-x"
  }
}
