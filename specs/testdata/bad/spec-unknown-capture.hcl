spec "x" {
  board { type = "sim" }
  setup {
    expect {
      regex   = "v(\\S+)"
      capture = "version"
    }
  }
  test "t" {
    assert { that = capture.verison == "1.0" }
  }
}
