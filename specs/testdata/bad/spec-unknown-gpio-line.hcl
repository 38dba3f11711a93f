spec "x" {
  board { type = "sim" }
  test "t" {
    gpio "buton" { set = 1 }
    wait {
      gpio  = "led"
      value = 1
    }
  }
}
