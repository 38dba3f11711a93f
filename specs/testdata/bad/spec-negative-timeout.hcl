spec "x" {
  board { type = "sim" }
  test "t" {
    timeout = "-5s"
    reset {}
  }
}
