# A real board (Nucleo with the sensor shield): flashing, host tools, raw
# bytes and the reset line.
spec "sensor-shield" {
  description = "The shield's ADC reads what the host measures."
  board {
    type = "nucleo-f401re"
    tags = { shield = "sensor" }
  }
  timeout       = "5m"
  idle_timeout  = "30s"
  line_ending   = "\r\n"
  fail_on       = ["HardFault"]
  fail_on_regex = ["ASSERT .* failed"]

  setup {
    tool "usb-reset" {}
    flash {
      timeout = "2m"
    }
    power "cycle" {}
    expect {
      text   = "Booting v${firmware.version}"
      within = "10s"
    }
  }

  test "adc matches the host" {
    retries = 2
    tool "read-adc" {
      args    = { channel = "0" }
      capture = "host_mv"
    }
    send { line = "adc 0" }
    measure "adc0_mv" {
      regex        = "adc0=([0-9]+)mV"
      unit         = "mV"
      min          = 3000
      max          = 3600
      marginal_min = 3135
      marginal_max = 3465
    }
    assert {
      that    = abs(measure.adc0_mv - tonumber(capture.host_mv)) < 50
      message = "board reads ${measure.adc0_mv} mV, host reads ${capture.host_mv} mV"
    }
  }

  test "ctrl-c interrupts and reset line reboots" {
    send { raw = "\\x03" }
    expect { text = "^C" }
    gpio "reset" {
      set = 1
      for = "50ms"
    }
    expect {
      text   = "Booting v${firmware.version}"
      within = "10s"
    }
  }
}
