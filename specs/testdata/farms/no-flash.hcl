farm "small" {}

board_type "bare" {}

board "bare-01" {
  type = "bare"
  power "command" {
    on  = ["ykushcmd", "-u", "1"]
    off = ["ykushcmd", "-d", "1"]
  }
  console "serial" {
    port = "/dev/serial/by-id/usb-FTDI_FT232R_A1-if00-port0"
  }
}
