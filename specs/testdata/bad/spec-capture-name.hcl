spec "x" {
  board { type = "sim" }
  test "t" {
    expect {
      regex   = "v(\\S+)"
      capture = "the version"
    }
  }
}
