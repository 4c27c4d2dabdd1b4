variable "pw" {
  type      = string
  sensitive = true
}

host "web1" {
  address = "web1.example.internal"
  winrm {
    user     = "deploy"
    password = "hunter2"
  }
}

service "api" {
  hosts        = ["web1", "web3"]
  binary       = build.api
  stop_timeout = "ten seconds"
  account {
    name = "NT SERVICE\\db"
  }
}
