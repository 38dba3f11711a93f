spec "x" {
  board { type = "sim" }
  test "t" {
    retries = 2
    repeat {
      count = 10
    }
    repeat {
      count = 5
    }
    power "cycle" {}
  }
}
