farm "f" {}

board_type "t" {
  tool "read-adc" {
    params = ["channel"]
    run    = ["hil-adc", "--channel", arg.chanel, "--spec", capture.x]
  }
}
