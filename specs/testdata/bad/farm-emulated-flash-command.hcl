farm "f" {}

board_type "sim" {
  flash "command" {
    run = ["true"]
  }
}

board "sim-01" {
  type = "sim"
  emulator "sim" {
    firmware = "firmware/sim-good.hcl"
  }
  gpio "button" {
    output = true
    chip   = "gpiochip0"
  }
}
