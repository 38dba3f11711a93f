spec "x" {
  board { type = "sim" }
  test "t" {
    retries = 100
    reset {}
  }
}
