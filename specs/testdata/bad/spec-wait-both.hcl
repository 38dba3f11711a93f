spec "x" {
  board { type = "sim" }
  test "t" {
    wait {
      for  = "1s"
      gpio = "led"
    }
  }
}
