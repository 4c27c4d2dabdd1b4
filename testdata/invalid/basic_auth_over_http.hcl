host "web2" {
  address = "web2.example.internal"
  winrm {
    https             = false
    allow_unencrypted = true
    auth              = "basic"
    user              = "deploy"
    password          = var.pw
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

# WARNING: 6:25 Password sent in clear text
