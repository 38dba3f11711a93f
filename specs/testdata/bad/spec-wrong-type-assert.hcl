spec "x" {
  board { type = "sim" }
  test "t" {
    assert { that = "all good" }
  }
}
