# Measurements with limits and a marginal band.
spec "measure" {
  description = "The sim board's temperature sensor reads in range."
  board { type = "sim" }
  timeout = "1m"

  setup {
    flash {}
    power "cycle" {}
    expect { text = "sim> " }
  }

  test "temperature in range" {
    send { line = "sensor temp" }
    measure "temp_c" {
      regex        = "temp=(-?[0-9]+(?:\\.[0-9]+)?)C"
      unit         = "degC"
      min          = 15
      max          = 45
      marginal_max = 40
      within       = "2s"
    }
    assert {
      that    = measure.temp_c != 0
      message = "the sensor reads exactly zero: is it connected?"
    }
  }

  test "uptime is sane" {
    send { line = "uptime" }
    measure "uptime_ms" {
      regex = "uptime=([0-9]+)ms"
      unit  = "ms"
      min   = 0
      max   = 3600000
    }
  }
}
