spec "x" {
  board { type = "sim" }
  test "t" {
    gpio "led" { set = 1 }
  }
}
