spec "x" {
  board { type = "sim" }
  test "t" {
    expect { text = "" }
  }
}
