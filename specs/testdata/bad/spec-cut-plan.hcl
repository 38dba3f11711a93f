spec "x" {
  board { type = "sim" }
  test "t" {
    repeat {
      count = 10
    }
    power "cut" {}
    power "cut" {
      delay  = "10ms"
      random = ["0ms", "5ms"]
    }
    power "cut" {
      random = ["800ms", "100ms"]
    }
    power "cut" {
      sweep = ["0ms", "2h"]
    }
    power "cut" {
      random = ["0ms"]
    }
    power "cut" {
      delay = "-5ms"
    }
    power "cut" {
      delay  = "1ms"
      within = "1s"
      steps  = 4
    }
  }
}
