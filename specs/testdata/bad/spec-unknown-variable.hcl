variable "expected_version" {
  default = "1.2.3"
}

spec "x" {
  board { type = "sim" }
  test "t" {
    expect { text = "HILFW ${var.expected_verison}" }
  }
}
