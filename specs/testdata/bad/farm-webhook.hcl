farm "f" {}

webhook "ci" {
  url    = "ci.example.com/hook"
  events = ["passed", "finished"]
}
