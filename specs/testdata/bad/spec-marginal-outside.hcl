spec "x" {
  board { type = "sim" }
  test "t" {
    measure "temp_c" {
      regex        = "temp=([0-9.]+)C"
      min          = 15
      max          = 45
      marginal_max = 50
    }
  }
}
