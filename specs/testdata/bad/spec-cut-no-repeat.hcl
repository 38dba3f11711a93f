spec "x" {
  board { type = "sim" }
  test "t" {
    power "cut" {
      sweep = ["0ms", "100ms"]
    }
    power "cut" {
      random = ["0ms", "100ms"]
    }
    power "cycle" {
      delay = "1s"
    }
  }
  test "by duration" {
    repeat {
      duration = "1m"
    }
    power "cut" {
      sweep = ["0ms", "100ms"]
    }
  }
}
