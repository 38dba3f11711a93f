spec "x" {
  board { type = "sim" }
  test "t" {
    repeat {
      count         = 10
      duration      = "200h"
      min_pass_rate = 1.5
      seed          = 0
      spread        = 17
    }
    power "cycle" {}
  }
}
