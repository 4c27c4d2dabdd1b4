host "web1_again" {
  address = "WEB1.example.internal"
  winrm {
    user     = "deploy"
    password = var.pw
  }
}
host "web1" {
  address = "web1.example.internal"
  labels  = { role = "web" }
  winrm {
    user     = "deploy"
    password = var.pw
  }
}

variable "pw" {
  type      = string
  sensitive = true
  default   = "secret"
}

build "app" {
  package = "./cmd/app"
}

# ERROR: 1:1 Duplicate host address
