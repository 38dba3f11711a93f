spec "x" {
  board { type = "sim" }
  test "t" {
    send { line = "config get ${capture.key}" }
    expect {
      regex   = "key=(\\w+)"
      capture = "key"
    }
  }
}
