spec "x" {
  board { type = "sim" }
  test "t" {
    sleep { for = "1s" }
  }
}
