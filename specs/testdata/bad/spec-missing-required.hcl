spec "x" {
  board { type = "sim" }
  test "t" {
    assert { message = "no condition" }
  }
}
