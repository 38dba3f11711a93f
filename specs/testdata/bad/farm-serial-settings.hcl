farm "f" {}
board_type "t" {}

board "b1" {
  type = "t"
  power "gpio" {
    line = "GPIO17"
  }
  console "serial" {
    port      = "/dev/serial/by-id/usb-x"
    data_bits = 9
    parity    = "odd-ish"
    stop_bits = 3
    dtr       = true
  }
}
