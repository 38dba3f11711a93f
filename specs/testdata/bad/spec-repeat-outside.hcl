spec "x" {
  board { type = "sim" }
  setup {
    send { line = "run ${repeat.iteration}" }
  }
  test "not repeated" {
    send { line = "run ${repeat.count}" }
  }
  test "repeated" {
    repeat {
      count = 3
    }
    send { line = "run ${repeat.index}" }
  }
}
