spec "x" {
  board { type = "sim" }
  test "t" {
    send { raw = "\\x0g" }
  }
}
