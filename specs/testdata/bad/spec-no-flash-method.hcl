# farm: farms/no-flash.hcl
spec "x" {
  board { type = "bare" }
  setup {
    flash {}
  }
  test "t" {
    reset {}
  }
}
