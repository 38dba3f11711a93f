spec "x" {
  board { type = "sim" }
  timeout = "0s"
  test "t" {
    reset {}
  }
}
