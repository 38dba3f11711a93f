farm "f" {}

board_type "t" {
  flash "command" {
    run = ["openocd", "-c", "program ${firmware.file}", var.x]
  }
  flash "jtag" {
    run = ["x"]
  }
}
