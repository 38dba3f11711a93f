spec "x" {
  board { type = "sim" }
  test "first" {
    expect {
      regex   = "v(\\S+)"
      capture = "version"
    }
  }
  test "second" {
    assert { that = capture.version != "" }
  }
}
