spec "x" {
  board { type = "sim" }
  test "t" {
    send { line = arg.channel }
  }
}
