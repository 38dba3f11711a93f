spec "x" {
  board { type = "sim" }
  test "t" {
    send { line = "sensor temp" }
    measure "t" {
      regex = "temp=([0-9.]+)C"
    }
    assert { that = measure.t + "a" > 3 }
  }
}
