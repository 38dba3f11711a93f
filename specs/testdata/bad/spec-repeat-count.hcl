spec "x" {
  board { type = "sim" }
  test "zero" {
    repeat {
      count = 0
    }
    power "cycle" {}
  }
  test "too many" {
    repeat {
      count = 100001
    }
    power "cycle" {}
  }
  test "neither" {
    repeat {
      stop_after_failures = 1
    }
    power "cycle" {}
  }
}
