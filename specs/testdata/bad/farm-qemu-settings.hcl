farm "f" {}
board_type "q" {}

board "q1" {
  type = "q"
  emulator "qemu" {
    load = "elf"
  }
  gpio "led" {}
}
