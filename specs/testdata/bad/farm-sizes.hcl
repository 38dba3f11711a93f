farm "f" {
  max_upload = "64 megs"
  retention {
    days     = 0
    max_size = "-1GiB"
  }
}
