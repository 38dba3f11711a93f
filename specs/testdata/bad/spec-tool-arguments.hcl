spec "x" {
  board { type = "nucleo-f401re" }
  test "t" {
    tool "read-adc" {
      args = { chan = "0" }
    }
  }
}
