spec "x" {
  board { type = "sim" }
  test "boots" {
    reset {}
  }
  test "boots" {
    power "cycle" {}
  }
}
