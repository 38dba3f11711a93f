spec "x" {
  board { type = "sim" }
  test "t" {
    power "toggle" {}
  }
}
