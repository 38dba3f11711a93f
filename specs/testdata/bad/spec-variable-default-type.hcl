variable "count" {
  type    = number
  default = "many"
}

spec "x" {
  board { type = "sim" }
  test "t" {
    reset {}
  }
}
