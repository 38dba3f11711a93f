spec "x" {
  test "t" {
    reset {}
  }
}
