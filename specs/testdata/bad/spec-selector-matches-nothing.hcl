spec "x" {
  board {
    type = "sim"
    tags = { rack = "a" }
  }
  test "t" {
    reset {}
  }
}
