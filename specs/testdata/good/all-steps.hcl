# Every step and attribute, with variables overridable at submit.
variable "version" {
  type    = string
  default = "2.0.1"
}
variable "max_temp" {
  type    = number
  default = 45
}
variable "strict" {
  type    = bool
  default = true
}
variable "serial" {
  description = "No default: required at submit."
  type        = string
}

spec "all-steps" {
  description   = "Covers every step kind."
  board {
    type = "nucleo-f401re"
    tags = { rack = "a", shield = "sensor" }
  }
  timeout       = "3m"
  idle_timeout  = "15s"
  line_ending   = "\r\n"
  fail_on       = ["HardFault", "v${var.version} panic"]
  fail_on_regex = ["(?i)assert(ion)? failed"]

  setup {
    flash {
      timeout = "2m"
    }
    power "on" {}
    power "off" {}
    power "cycle" {
      off_for = "1500ms"
    }
    reset {}
    expect {
      text   = "Booting v${firmware.version} on ${board.name}"
      within = "30s"
    }
  }

  test "steps" {
    retries = 2
    timeout = "1m"
    send { line = "serial ${var.serial}" }
    send { raw = "\\x1b[A\\\\\u0003" }
    expect {
      regex   = "serial=(\\w+)"
      capture = "serial"
    }
    measure "temp" {
      regex        = "t(emp)?=(-?[0-9.]+)"
      group        = 2
      unit         = "degC"
      within       = "3s"
      min          = -10
      max          = var.max_temp
      marginal_min = 0
      marginal_max = var.max_temp - 5
    }
    assert {
      that    = !var.strict || (measure.temp < var.max_temp && capture.serial != "")
      message = format("temp %.1f on %s (%s)", measure.temp, board.name, lookup(board.tags, "rack", "?"))
    }
    gpio "button" {
      set = true
      for = "200ms"
    }
    gpio "reset" { set = 0 }
    wait { for = "50ms" }
    wait {
      gpio   = "led"
      value  = false
      within = "2s"
    }
    tool "read-adc" {
      args    = { channel = "${capture.serial}-0" }
      timeout = "5s"
      capture = "adc"
    }
    tool "usb-reset" {}
    assert { that = tonumber(capture.adc) > 0 }
  }

  teardown {
    power "off" {}
  }
}
