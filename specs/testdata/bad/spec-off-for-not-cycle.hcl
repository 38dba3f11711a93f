spec "x" {
  board { type = "sim" }
  test "t" {
    power "on" {
      off_for = "1s"
    }
  }
}
