spec "broken" {
  board { type = "sim" }
  test "t" {
    send { line = "version }
  }
}
