spec "x" {
  board { type = "sim" }
  test "t" {
    expect {
      text  = "ok"
      regex = "o+k"
    }
  }
}
