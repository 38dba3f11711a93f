spec "x" {
  board { type = "sim" }
  test "t" {
    expect { regex = "temp=([0-9.]+C" }
  }
}
