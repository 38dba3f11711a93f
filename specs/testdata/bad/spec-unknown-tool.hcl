spec "x" {
  board { type = "nucleo-f401re" }
  test "t" {
    tool "usb-rest" {}
  }
}
