spec "a" {
  board { type = "sim" }
  test "t" {
    reset {}
  }
}

spec "b" {
  board { type = "sim" }
  test "t" {
    reset {}
  }
}
