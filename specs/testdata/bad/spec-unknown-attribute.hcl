spec "x" {
  board { type = "sim" }
  timeuot = "1m"
  test "t" {
    reset {}
  }
}
