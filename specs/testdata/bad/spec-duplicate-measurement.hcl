spec "x" {
  board { type = "sim" }
  setup {
    measure "temp_c" {
      regex = "temp=([0-9.]+)C"
    }
  }
  test "t" {
    measure "temp_c" {
      regex = "temp=([0-9.]+)C"
    }
  }
}
