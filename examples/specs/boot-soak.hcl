# Boot soak: power-cycle the board 500 times; each iteration is power off,
# power on, and the wait for the prompt, so the campaign's iteration times
# are the boot-time distribution as the rig sees it (power-on to prompt,
# plus the off time). The report gives the pass rate, min/median/p95/max
# with a histogram, and the failing or slowest iterations (docs/campaigns.md).
variable "cycles" {
  type    = number
  default = 500
}

spec "boot-soak" {
  description = "The candidate boots to its prompt on every one of 500 power cycles."
  board { type = "sim" }
  timeout = "30m"

  setup {
    flash {}
  }

  test "boots every time" {
    timeout = "25m"
    repeat {
      count         = var.cycles
      min_pass_rate = 1
    }
    power "cycle" {
      off_for = "1ms"
    }
    expect {
      text   = "sim> "
      within = "5s"
    }
  }

  teardown {
    power "off" {}
  }
}
